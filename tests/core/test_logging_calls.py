"""Every logging call of the package has as many arguments as its message has placeholders: a
mismatch is not an error where it is made but a "--- Logging error ---" traceback in a job's
log, which reads as a crash and hides the message (issue #20)."""

import ast
import re

from support import SCRIPTS

PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def placeholders(text: str) -> int:
    return sum(1 for m in PLACEHOLDER.finditer(text) if m.group() != "%%")


def log_calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LEVELS \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger") and node.args:
            yield node


def test_every_log_call_has_as_many_arguments_as_placeholders():
    calls, wrong = 0, []
    for path in sorted((SCRIPTS / "sarchat_bench").rglob("*.py")):
        for node in log_calls(ast.parse(path.read_text())):
            message, given = node.args[0], len(node.args) - 1
            for text in (message.body, message.orelse) if isinstance(message, ast.IfExp) else (message,):
                if isinstance(text, ast.Constant) and isinstance(text.value, str):
                    calls += 1
                    if placeholders(text.value) != given:
                        wrong.append(f"{path.relative_to(SCRIPTS)}:{node.lineno}: {text.value!r} with {given}")
    assert calls > 40 and not wrong, wrong


def test_the_check_sees_a_mismatch():
    tree = ast.parse('log.info("%s: resuming from %s" if resume else "%s: from step 0", model, resume)')
    (node,) = log_calls(tree)
    assert [placeholders(t.value) for t in (node.args[0].body, node.args[0].orelse)] == [2, 1]
