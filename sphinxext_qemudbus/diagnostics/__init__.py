"""The shared vocabulary of every stage: the one finding type (`Diagnostic`), the rule table and the output formats.

The bottom floor: it imports nothing else from the package.
"""
