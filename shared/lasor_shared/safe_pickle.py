"""The one restricted unpickler of lasor: reads user pickles (official SMPL `.pkl`, 3DPW sequences)
without running any code from them.

Allowed: numpy arrays, scalars and dtypes, plain containers, chumpy objects (read as the arrays they
hold; chumpy need not be installed) and — for SMPL files — scipy CSR/CSC matrices, whose structure
is validated before they are expanded to dense arrays (unpickling sets their arrays unchecked, and
expanding out-of-range indices writes outside the buffer). Everything else is refused. Any failure
(a refused global, an allowed one called with wrong arguments, a malformed stream) is a
`pickle.UnpicklingError` with a one-line reason.
"""

from __future__ import annotations

import codecs
import copyreg
import pickle

import numpy as np
import scipy.sparse

MAX_SPARSE_ELEMENTS = 10**8  # dense size a sparse matrix may expand to


class _ChumpyArray:
    """Stand-in for chumpy objects: keeps their pickled state, turned into an array afterwards."""

    state = None  # unpickling may build it without __init__ and without any state

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def to_numpy(self):
        state = self.state if isinstance(self.state, dict) else {}
        for key in ("x", "a"):
            if key in state:
                return np.asarray(_plain(state[key]))
        raise pickle.UnpicklingError("chumpy object without array data")


def _allowed(sparse: bool) -> dict:
    allowed = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
        ("copy_reg", "_reconstructor"): copyreg._reconstructor,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,
        ("__builtin__", "object"): object, ("builtins", "object"): object,
        ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles store array bytes
    }
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(core, "_reconstruct")] = np._core.multiarray._reconstruct
        allowed[(core, "scalar")] = np._core.multiarray.scalar
    return allowed


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, sparse):
        super().__init__(f, encoding="latin1")
        self.allowed, self.sparse = _allowed(sparse), sparse

    def find_class(self, module, name):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyArray
        if self.sparse and module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return getattr(scipy.sparse, name)
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def check_sparse(m) -> None:
    """ValueError unless a CSR/CSC matrix has a sane shape, monotone in-range indptr, in-range
    indices and consistent lengths (checked before anything reads it)."""
    shape = getattr(m, "_shape", None)
    if (not isinstance(shape, tuple) or len(shape) != 2
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise ValueError(f"sparse matrix with an invalid shape {shape!r}")
    if int(shape[0]) * int(shape[1]) > MAX_SPARSE_ELEMENTS:
        raise ValueError(f"sparse matrix of shape {shape} is too large")
    arrays = [m.__dict__.get(k) for k in ("data", "indices", "indptr")]
    if any(type(a) is not np.ndarray or a.ndim != 1 for a in arrays):
        raise ValueError("sparse matrix data/indices/indptr are not 1-D arrays")
    data, indices, indptr = arrays
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu" or data.dtype.kind not in "biuf":
        raise ValueError("sparse matrix with non-integer indices or non-numeric data")
    major, minor = (shape[0], shape[1]) if m.format == "csr" else (shape[1], shape[0])
    if len(indptr) != major + 1 or indptr[0] != 0 or np.any(np.diff(indptr.astype(np.int64)) < 0):
        raise ValueError("sparse matrix indptr is not monotone from 0 with one entry per row + 1")
    if indptr[-1] != len(indices) or len(indices) != len(data):
        raise ValueError("sparse matrix indptr, indices and data lengths disagree")
    if len(indices) and (indices.min() < 0 or indices.max() >= minor):
        raise ValueError(f"sparse matrix indices outside [0, {minor})")


def _plain(x):
    """Chumpy stand-ins → arrays, validated sparse matrices → dense arrays, through containers."""
    if isinstance(x, _ChumpyArray):
        return x.to_numpy()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    if type(x).__name__ in ("csr_matrix", "csc_matrix") and type(x).__module__.startswith("scipy.sparse"):
        check_sparse(x)
        return x.toarray()
    return x


def load(f, sparse: bool = False):
    """Unpickle the binary file object `f` (see the module doc); UnpicklingError on any failure."""
    try:
        return _plain(_Unpickler(f, sparse).load())
    except pickle.UnpicklingError:
        raise
    except Exception as e:  # allowed globals with wrong arguments, malformed streams, bad sparse data …
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise pickle.UnpicklingError(f"{type(e).__name__}: {msg}"[:300]) from None
