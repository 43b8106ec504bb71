"""The QONNX reference executor as a peer to agree with (needs ``qonnx`` and ``onnxruntime``).

``execute_onnx`` runs the model node by node (custom quantizer ops in numpy, standard ops in
onnxruntime). The exported model is declared for batch 1; :func:`reference_logits` can run it
batched by re-declaring the input batch and the one constant Reshape shape, which changes no
arithmetic — :func:`reference_logits` with ``batch=1`` runs the file exactly as exported, and
the tests check both give the same outputs.
"""

from __future__ import annotations

import numpy as np

from hwnorm.io import read_model_bytes

__all__ = ["available", "load_reference", "reference_logits"]


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import qonnx  # noqa: F401
    except ImportError:
        return False
    return True


def load_reference(path):
    import onnxruntime
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    # onnxruntime's C++ logger writes its warnings (coloured) straight to the terminal, past any
    # Python stream: errors only, so a command's output stays its own.
    onnxruntime.set_default_logger_severity(3)
    try:
        import onnx
        return cleanup_model(ModelWrapper(onnx.load_from_string(read_model_bytes(path)))).transform(InferShapes())
    except Exception as e:  # shape inference and cleanup raise whatever their ops raise
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"{path}: the QONNX executor cannot load this model ({type(e).__name__}: {first})") from None


def _batched(model, n: int):
    """A copy declared for batch ``n``: input batch dim and constant (1, …) Reshape shapes."""
    from qonnx.transformation.infer_shapes import InferShapes

    m = model.transform(InferShapes())  # transform returns a deep copy
    iname = m.graph.input[0].name
    shape = list(m.get_tensor_shape(iname))
    m.set_tensor_shape(iname, [n] + shape[1:])
    for node in m.graph.node:
        if node.op_type == "Reshape":
            target = m.get_initializer(node.input[1])
            if target is not None and target.size and target[0] == 1:
                t = target.copy()
                t[0] = n
                m.set_initializer(node.input[1], t)
    for vi in list(m.graph.value_info):  # let shape inference redo every intermediate shape
        m.graph.value_info.remove(vi)
    for out in m.graph.output:
        out.type.tensor_type.shape.dim[0].dim_value = n
    return m.transform(InferShapes())


def reference_logits(model, x_float: np.ndarray, batch: int = 1000, progress=None) -> np.ndarray:
    """Float outputs of the QONNX executor for inputs ``x_float`` (N, *input shape[1:])."""
    from qonnx.core.onnx_exec import execute_onnx

    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    in_shape = list(model.get_tensor_shape(iname))
    outs = []
    cache = {}
    for i in range(0, len(x_float), batch):
        chunk = np.ascontiguousarray(x_float[i:i + batch], dtype=np.float32).reshape([-1] + in_shape[1:])
        n = chunk.shape[0]
        if n == 1 and in_shape[0] == 1:
            m = model
        else:
            m = cache.get(n) or cache.setdefault(n, _batched(model, n))
        try:
            out = execute_onnx(m, {iname: chunk})[oname]
        except Exception as e:  # onnxruntime's Fail / InvalidGraph / …, the executor's own errors
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise ValueError(f"the QONNX executor cannot run this model ({type(e).__name__}: {first})") from None
        outs.append(np.asarray(out).reshape(n, -1))
        if progress:
            progress(min(i + batch, len(x_float)), len(x_float))
    return np.concatenate(outs)
