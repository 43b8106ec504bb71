"""Folding as a value (hwnorm.folding): immutable, hashable, a plain mapping to its readers, and
one check of its form for every place a user writes one."""

import copy
import json
import pickle

import numpy as np
import pytest

from hwnorm.dataflow import auto_folding, check_folding
from hwnorm.folding import Fold, Folding
from hwnorm.models import load_network


def test_a_fold_is_a_frozen_hashable_mapping_equal_to_its_dict():
    fold = Fold(pe=4, simd=np.int64(8))
    assert fold == {"pe": 4, "simd": 8} and type(fold["simd"]) is int and fold.lanes == 32
    assert hash(fold) == hash(Fold({"simd": 8, "pe": 4})) and len({fold, Fold(simd=8, pe=4)}) == 1
    assert json.loads(json.dumps(fold)) == {"pe": 4, "simd": 8}
    for change in (lambda f: f.__setitem__("pe", 2), lambda f: f.update(pe=2), lambda f: f.pop("pe"),
                   lambda f: f.setdefault("x", 1), lambda f: f.clear()):
        with pytest.raises(TypeError, match="cannot change"):
            change(fold)
    assert fold == {"pe": 4, "simd": 8}
    assert fold.merged({"pe": 2}) == {"pe": 2, "simd": 8} and fold["pe"] == 4
    for copied in (pickle.loads(pickle.dumps(fold)), copy.deepcopy(fold), copy.copy(fold)):
        assert type(copied) is Fold and copied == fold


def test_a_folding_holds_folds_and_round_trips():
    folding = Folding({"a": {"pe": 2}, "b": Fold(pe=1, simd=4)})
    assert all(type(f) is Fold for f in folding.values()) and folding.to_json() == {"a": {"pe": 2}, "b": {"pe": 1, "simd": 4}}
    assert pickle.loads(pickle.dumps(folding)) == folding and hash(folding) == hash(Folding(folding.to_json()))
    assert folding.merged({"b": {"pe": 2}, "c": {"pe": 3}}) == {"a": {"pe": 2}, "b": {"pe": 2, "simd": 4}, "c": {"pe": 3}}


@pytest.mark.parametrize("doc, message", [
    ([1], "f.toml: [folding] must be a table of layers"),
    ({"L": 4}, "f.toml: folding.L must be a table like { pe = 4, simd = 8 }, got 4"),
    ({"L": {"lanes": 2}}, "f.toml: folding.L: unknown key 'lanes'; allowed: pe, simd"),
    ({"L": {"pe": 0}}, "f.toml: folding.L.pe must be a whole number ≥ 1, got 0"),
    ({"L": {"pe": True}}, "f.toml: folding.L.pe must be a whole number ≥ 1, got True"),
    ({"L": {"simd": 2.0}}, "f.toml: folding.L.simd must be a whole number ≥ 1, got 2.0"),
])
def test_parse_names_the_entry_at_fault(doc, message):
    with pytest.raises(ValueError) as e:
        Folding.parse(doc, allowed=("pe", "simd"), where="f.toml")
    assert str(e.value).startswith(message), e.value


def test_the_network_check_completes_a_partial_folding_with_the_automatic_one():
    net, _ = load_network("TFC_1W1A")
    auto = auto_folding(net)
    assert isinstance(auto, Folding) and list(auto) == [layer.name for layer in net.layers]
    name = net.layers[1].name
    full = check_folding(net, {name: {"pe": 1}})
    assert isinstance(full, Folding) and full[name] == auto[name].merged({"pe": 1})
    assert all(full[n] == auto[n] for n in auto if n != name)
    with pytest.raises(ValueError, match=f"folding.{name}: unknown key 'colour'; allowed: pe, simd"):
        check_folding(net, {name: {"colour": 1}})
    with pytest.raises(ValueError, match="folding names layer 'nope', which is not in the network"):
        check_folding(net, {"nope": {"pe": 1}})


@pytest.mark.parametrize("model", ["TFC_1W1A", "CNV_MNIST_1W1A"])
def test_every_block_knows_the_folding_it_was_built_at(model):
    net, _ = load_network(model)
    for layer in net.layers:
        for fold in layer.foldings()[:3]:
            assert layer.block(fold).fold == fold and isinstance(layer.block(fold).fold, Fold), layer.name
