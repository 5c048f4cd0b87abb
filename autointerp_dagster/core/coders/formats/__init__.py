"""One module per coder family: its `SparseCoder` subclass and the loader that reads its files.

Only the encoder side of the weights is read: decoders are as large as encoders and never
needed for caching.
"""
