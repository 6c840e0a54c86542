"""Building blocks shared by the tasks: input layers, the encoder, attention, the decoder."""
