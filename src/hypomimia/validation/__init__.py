"""The data-validation gate (`hypomimia validate`): expectation suites, derived tables, reference statistics.

The stage itself is :mod:`hypomimia.stages.validate`; this package holds its parts so each stays short.
"""
