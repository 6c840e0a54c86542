"""Recipes: YAML files that say what to train. See `seqcli.recipe.resolve.load_recipe`."""
