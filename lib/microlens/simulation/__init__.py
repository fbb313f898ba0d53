"""(subpackage)"""
