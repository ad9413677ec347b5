"""Paddle's ``framework.proto`` (ProgramDesc) as protobuf message classes, built from a hand-written schema.

Only the fields liteseg reads or writes are declared; everything else survives parsing and re-serialising as
unknown fields. Enum-typed fields are declared as int32 so unknown enum values never fail a parse, and every
field is optional so a truncated-but-parsable message is reported by our own checks, not by protobuf.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
_T = {"int32": F.TYPE_INT32, "int64": F.TYPE_INT64, "float": F.TYPE_FLOAT, "double": F.TYPE_DOUBLE,
      "string": F.TYPE_STRING, "bool": F.TYPE_BOOL, "bytes": F.TYPE_BYTES}

# message name -> [(field name, number, type or message name, repeated)]
_SCHEMA: dict[str, list[tuple[str, int, str, bool]]] = {
    "Version": [("version", 1, "int64", False)],
    "Complex": [("r", 1, "double", False), ("i", 2, "double", False)],
    "Scalar": [("type", 1, "int32", False), ("b", 2, "bool", False), ("i", 3, "int64", False),
               ("r", 4, "double", False), ("c", 5, "Complex", False)],
    "Attr": [("name", 1, "string", False), ("type", 2, "int32", False), ("i", 3, "int32", False),
             ("f", 4, "float", False), ("s", 5, "string", False), ("ints", 6, "int32", True),
             ("floats", 7, "float", True), ("strings", 8, "string", True), ("b", 10, "bool", False),
             ("bools", 11, "bool", True), ("block_idx", 12, "int32", False), ("l", 13, "int64", False),
             ("blocks_idx", 14, "int32", True), ("longs", 15, "int64", True), ("float64s", 16, "double", True),
             ("var_name", 17, "string", False), ("vars_name", 18, "string", True),
             ("float64", 19, "double", False), ("scalar", 20, "Scalar", False), ("scalars", 21, "Scalar", True)],
    "OpVar": [("parameter", 1, "string", False), ("arguments", 2, "string", True)],
    "OpDesc": [("inputs", 1, "OpVar", True), ("outputs", 2, "OpVar", True), ("type", 3, "string", False),
               ("attrs", 4, "Attr", True), ("is_target", 5, "bool", False)],
    "TensorDesc": [("data_type", 1, "int32", False), ("dims", 2, "int64", True)],
    "LoDTensorDesc": [("tensor", 1, "TensorDesc", False), ("lod_level", 2, "int32", False)],
    "VarType": [("type", 1, "int32", False), ("selected_rows", 2, "TensorDesc", False),
                ("lod_tensor", 3, "LoDTensorDesc", False)],
    "VarDesc": [("name", 1, "string", False), ("type", 2, "VarType", False), ("persistable", 3, "bool", False),
                ("need_check_feed", 4, "bool", False), ("is_parameter", 5, "bool", False),
                ("stop_gradient", 6, "bool", False)],
    "BlockDesc": [("idx", 1, "int32", False), ("parent_idx", 2, "int32", False), ("vars", 3, "VarDesc", True),
                  ("ops", 4, "OpDesc", True), ("forward_block_idx", 5, "int32", False)],
    "ProgramDesc": [("blocks", 1, "BlockDesc", True), ("version", 4, "Version", False)],
}
_PACKAGE = "liteseg.paddle.framework"


def _build() -> dict[str, type]:
    fdp = descriptor_pb2.FileDescriptorProto(name="liteseg_paddle_framework.proto", package=_PACKAGE,
                                             syntax="proto2")
    for msg_name, fields in _SCHEMA.items():
        msg = fdp.message_type.add(name=msg_name)
        for name, number, typ, repeated in fields:
            f = msg.field.add(name=name, number=number, label=_REP if repeated else _OPT)
            if typ in _T:
                f.type = _T[typ]
            else:
                f.type = F.TYPE_MESSAGE
                f.type_name = f".{_PACKAGE}.{typ}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in _SCHEMA}


_CLASSES = _build()
ProgramDesc = _CLASSES["ProgramDesc"]
TensorDesc = _CLASSES["TensorDesc"]
OpDesc = _CLASSES["OpDesc"]
VarDesc = _CLASSES["VarDesc"]

# VarType.Type values (framework.proto)
VAR_TYPES = {0: "bool", 1: "int16", 2: "int32", 3: "int64", 4: "float16", 5: "float32", 6: "float64",
             20: "uint8", 21: "int8", 22: "bfloat16"}
LOD_TENSOR, FEED_MINIBATCH, FETCH_LIST, READER, RAW = 7, 9, 10, 15, 17
NON_PARAM_VAR_TYPES = {FEED_MINIBATCH, FETCH_LIST, READER, RAW}
# Attr.type values
ATTR_INT, ATTR_FLOAT, ATTR_STRING, ATTR_INTS, ATTR_FLOATS, ATTR_BOOLEAN, ATTR_LONG = 0, 1, 2, 3, 4, 6, 9
