"""The rules and the data of teamaccess: models, policy, operations and reads.

Nothing in this package imports Textual or Rich; the faces (``tui``) call into it.
"""
