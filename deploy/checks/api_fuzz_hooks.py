"""Schemathesis hooks of deploy/checks/api_fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

ast.parse is not safe in several threads at once before CPython 3.11.8 / 3.12.2 (the
machine's 3.11.7 included): the AST constructor kept its recursion depth in state the threads
share, and a parse interleaved with another one fails with `SystemError: AST constructor
recursion depth mismatch` (python/cpython#106905). Hypothesis parses source files to describe
the lambdas of strategy filters, so Schemathesis's workers hit it now and then: a "Runtime
Error" of the check, not an answer of the server. Hence one lock around ast.parse.
"""

import ast
import threading

_lock = threading.RLock()
_parse = ast.parse


def _locked_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


ast.parse = _locked_parse
