"""The estimators' parameter docs: assembled from one source, complete, in signature order."""

from __future__ import annotations

import inspect
import re

import pytest

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._mlp._base import BaseTelescopingMLP
from sktelescope._mlp._docs import SHARED_PARAMETERS, document_parameters

ESTIMATORS = [TelescopingMLPRegressor, TelescopingMLPClassifier]


def _signature_names(cls) -> list[str]:
    return [n for n in inspect.signature(cls.__init__).parameters if n != "self"]


def _documented_names(cls) -> list[str]:
    section = cls.__doc__.split("Parameters\n    ----------\n")[1].split("\n\n    ")[0]
    return re.findall(r"^    (\w+) : ", section, flags=re.MULTILINE)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_every_parameter_is_documented_in_signature_order(cls):
    assert _documented_names(cls) == _signature_names(cls)
    assert "{parameters}" not in cls.__doc__


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_numpydoc_validates_the_assembled_docstring(cls):
    validate = pytest.importorskip("numpydoc.validate")
    result = validate.validate(f"sktelescope.{cls.__name__}")
    parameter_errors = [(code, msg) for code, msg in result["errors"] if code.startswith("PR")]
    assert parameter_errors == []


def test_shared_docs_are_written_once_and_used_by_both():
    for cls in ESTIMATORS:
        for name in SHARED_PARAMETERS:
            assert cls.__doc__.count(f"\n    {name} : ") == 1
    shared_block = SHARED_PARAMETERS["max_stages"].replace("\n", "\n    ")
    assert all(shared_block in cls.__doc__ for cls in ESTIMATORS)


def test_the_classifier_signature_is_the_shared_one_plus_its_own():
    """The classifier restates the base signature to add ``label_smoothing``: a parameter
    added to the base must be added there too (else clone and get_params lose it)."""
    base = _signature_names(BaseTelescopingMLP)
    assert _signature_names(TelescopingMLPRegressor) == base
    own = [n for n in _signature_names(TelescopingMLPClassifier) if n not in base]
    assert own == ["label_smoothing"]
    assert [n for n in _signature_names(TelescopingMLPClassifier) if n in base] == base
    defaults = inspect.signature(BaseTelescopingMLP.__init__).parameters
    clf = inspect.signature(TelescopingMLPClassifier.__init__).parameters
    assert all(clf[n].default == defaults[n].default for n in base)


def test_a_docstring_without_the_marker_is_refused():
    with pytest.raises(TypeError, match="no {parameters} line"):

        @document_parameters()
        class Undocumented:
            """No parameters section."""
