"""The strings a name expression in our code stands for, found by reading the code (ast), not running it.

Used by the settings test (which variables the code reads) and the IAM derivation (which operations
the store calls): a name is followed to its string constants, assigned in the module, imported from
another module of ours, or taken in a loop over a literal; anything else is Unresolved.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Unresolved(Exception):
    """A name expression whose string the code computes at run time."""


def _strings(node):
    """The strings of a literal: a string, or a tuple, list or set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e.value for e in node.elts]
    raise Unresolved


def _loop_values(target, iterable, name):
    """The strings `name` takes in `for target in iterable` when iterable is a literal; [] when target does not bind it."""
    if isinstance(target, ast.Name):
        if target.id != name:
            return []
        if isinstance(iterable, ast.Dict):
            return [v for key in iterable.keys for v in _strings(key)]
        if isinstance(iterable, (ast.Tuple, ast.List, ast.Set)):
            return [v for element in iterable.elts for v in _strings(element)]
        raise Unresolved
    if isinstance(target, ast.Tuple):
        for position, element in enumerate(target.elts):
            if isinstance(element, ast.Name) and element.id == name:
                rows = iterable.elts if isinstance(iterable, (ast.Tuple, ast.List)) else [None]
                if not all(isinstance(row, (ast.Tuple, ast.List)) and len(row.elts) == len(target.elts) for row in rows):
                    raise Unresolved
                return [v for row in rows for v in _strings(row.elts[position])]
    return []


def resolve(node, tree):
    """The variable names an expression stands for: a string, or a name followed to its string
    constants (assigned in the module, imported from another of ours, or a loop over a literal)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if not isinstance(node, ast.Name):
        raise Unresolved
    found = set()
    for other in ast.walk(tree):
        if isinstance(other, ast.Assign):
            for target in other.targets:
                if isinstance(target, ast.Name) and target.id == node.id:
                    found |= set(_strings(other.value))
                elif isinstance(target, ast.Tuple):  # A, B = "a", "b"
                    found |= set(_loop_values(target, ast.Tuple(elts=[other.value]), node.id))
        elif isinstance(other, ast.AnnAssign) and isinstance(other.target, ast.Name) and other.target.id == node.id and other.value:
            found |= set(_strings(other.value))
        elif isinstance(other, (ast.For, ast.comprehension)):
            found |= set(_loop_values(other.target, other.iter, node.id))
        elif isinstance(other, ast.ImportFrom) and other.module and other.level == 0:
            for alias in other.names:
                if (alias.asname or alias.name) == node.id:
                    source = ROOT / (other.module.replace(".", "/") + ".py")
                    if not source.is_file():
                        raise Unresolved
                    found |= resolve(ast.Name(id=alias.name), ast.parse(source.read_text()))
    if not found:
        raise Unresolved
    return found
