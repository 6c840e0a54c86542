"""seqcli-fasta: a dataset (`fasta`) and a task (`regress`) as a third-party seqcli plugin.

`fasta` reads sequences from a FASTA file whose headers carry numbers (`>seq1 tm=54.0`);
`regress` reads a whole sequence and predicts one number (many-to-one regression). The
recipe `oligo-tm` learns the melting temperature of short DNA oligos from a file shipped
beside it. Written against seqcli's stable API alone (`seqcli.api`, `seqcli.layers`).
"""

from seqcli_fasta.data import Fasta, read_fasta
from seqcli_fasta.task import Regress

__all__ = ["Fasta", "Regress", "read_fasta"]
