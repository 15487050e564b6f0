"""Exact ONNX graph rewrites a converter needs before it sees the export, named by a target's ``rewrites``.

Each rewrite changes how the graph computes, never what it computes: ``apply`` records what every rewrite
touched, and ``exact`` runs the rewritten graph beside the export in ONNX Runtime on the held-out images,
failing the step on any difference at all. Copied into the images whose toolchain.yaml lists it under
``shared:`` (they have onnx, numpy and onnxruntime).
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from posepipe_step import fail, max_abs_diff


def _ints(node, name, default=()):
    return next((list(a.ints) for a in node.attribute if a.name == name), list(default))


def _int(node, name, default=0):
    return next((a.i for a in node.attribute if a.name == name), default)


def pad_relu_maxpool(model):
    """Padded MaxPools whose input comes from a Relu, rewritten as an explicit zero Pad and an unpadded
    MaxPool: exact (the pooled values are >= 0, so zero padding never wins a maximum, as -inf padding would
    not). Full-integer LiteRT refuses the PADV2 onnx2tf makes of the padded pool."""
    graph = model.graph
    made = {o: n for n in graph.node for o in n.output}
    done, nodes = [], []
    for node in graph.node:
        pads = _ints(node, "pads")
        source = made.get(node.input[0]) if node.input else None
        if node.op_type == "MaxPool" and any(pads) and source is not None and source.op_type == "Relu":
            rank = len(pads) // 2
            amounts = numpy_helper.from_array(np.array([0, 0, *pads[:rank], 0, 0, *pads[rank:]], np.int64), f"{node.name}_pads")
            graph.initializer.append(amounts)
            nodes.append(helper.make_node("Pad", [node.input[0], amounts.name], [f"{node.input[0]}_padded"], mode="constant",
                                          name=f"{node.name}_pad"))
            node.input[0] = f"{node.input[0]}_padded"
            for a in node.attribute:
                if a.name == "pads":
                    a.ints[:] = [0] * len(pads)
            done.append(node.name)
        nodes.append(node)
    graph.ClearField("node")
    graph.node.extend(nodes)
    return done


CASCADE_KERNEL = 5


def cascade_maxpool(model):
    """Stride-1 'same' MaxPools with a k x k kernel larger than 5 (k = 4n + 1: RTMPose's SPPF 9x9 and 13x13)
    rewritten as a chain of n 5x5 ones: exact (a max over the union of windows, with MaxPool's padding never
    winning). rknn-toolkit2 turns the large pools on RTMPose's 8x6 map into a global max, which is not equal."""
    graph = model.graph
    done, nodes = [], []
    for node in graph.node:
        k = _ints(node, "kernel_shape")
        big = (node.op_type == "MaxPool" and len(node.output) == 1 and len(set(k)) == 1 and k[0] > CASCADE_KERNEL
               and (k[0] - 1) % (CASCADE_KERNEL - 1) == 0 and set(_ints(node, "strides", [1])) == {1}
               and set(_ints(node, "dilations", [1])) == {1} and not _int(node, "ceil_mode")
               and _ints(node, "pads") == [(k[0] - 1) // 2] * (2 * len(k)))
        if not big:
            nodes.append(node)
            continue
        links = (k[0] - 1) // (CASCADE_KERNEL - 1)
        source = node.input[0]
        for i in range(links):
            out = node.output[0] if i == links - 1 else f"{node.name}_cascade{i}"
            nodes.append(helper.make_node("MaxPool", [source], [out], name=f"{node.name}_cascade{i}",
                                          kernel_shape=[CASCADE_KERNEL] * len(k), strides=[1] * len(k),
                                          pads=[CASCADE_KERNEL // 2] * (2 * len(k))))
            source = out
        done.append(f"{node.name} ({k[0]}x{k[0]} -> {links} x {CASCADE_KERNEL}x{CASCADE_KERNEL})")
    graph.ClearField("node")
    graph.node.extend(nodes)
    return done


REWRITES = {"pad_relu_maxpool": pad_relu_maxpool, "cascade_maxpool": cascade_maxpool}  # a target's `rewrites` name these


def apply(names, source, dest):
    """The export at ``source`` with the rewrites ``names`` applied in order, saved to ``dest``; what each touched.
    A rewrite that finds nothing fails the step: the target names it for a reason that no longer holds."""
    model = onnx.load(str(source))
    applied = {}
    for name in names:
        applied[name] = REWRITES[name](model)
        if not applied[name]:
            fail(f"the rewrite {name} found nothing to rewrite in this model; remove it from the target")
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))
    return applied


def exact(rewritten, inputs, expected, input_name):
    """The largest difference between the rewritten graph's outputs and the export's (``expected``) on
    ``inputs``, in ONNX Runtime; anything but 0 fails the step."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(rewritten), providers=["CPUExecutionProvider"])
    diff = max_abs_diff(expected, [session.run(None, {input_name: x}) for x in inputs])
    if diff != 0.0:
        fail(f"the graph rewrites change the model's outputs (max abs diff {diff:g}); they must be exact")
    return diff
