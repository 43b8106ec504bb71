"""Names that reach Verilog are legal identifiers; user-chosen top names are checked."""

import pytest

from hwnorm.hdl.names import check_identifier, sanitize, unique_names


@pytest.mark.parametrize("raw,clean", [("MatMul_16", "MatMul_16"), ("a b;c", "a_b_c"), ("7up", "n_7up"),
                                       ("module", "module_"), ("", "n"), ("\\esc ape", "esc_ape"),
                                       ("x" * 100, "x" * 64)])
def test_sanitize(raw, clean):
    assert sanitize(raw) == clean


def test_unique_names_never_collide():
    assert unique_names(["a", "a", "a_2", "a b"]) == ["a", "a_2", "a_2_2", "a_b"]


@pytest.mark.parametrize("bad", ["tfc top", "1tfc", "wire", "t;", "x" * 65, ""])
def test_check_identifier_refuses(bad):
    with pytest.raises(ValueError, match="Verilog"):
        check_identifier(bad, "top name")
