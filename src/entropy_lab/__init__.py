"""entropy-lab: does the source of randomness change what a language model writes?"""

__version__ = "0.1.0"
