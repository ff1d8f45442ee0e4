/** Element types mtl uses, named as onnxruntime's JavaScript API names them. */
export type DType = "float32" | "float64" | "float16" | "int64" | "int32" | "int8" | "uint8" | "bool";

export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array // float16 bits
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array; // uint8 and bool

/** TensorProto.DataType codes (ONNX IR specification). */
export const ONNX_DATA_TYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

const BY_CODE = new Map<number, DType>(Object.entries(ONNX_DATA_TYPE).map(([k, v]) => [v, k as DType]));

/** Every TensorProto.DataType name, for messages about types mtl does not handle. */
export const ONNX_DATA_TYPE_NAMES: readonly string[] = [
  "undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16",
  "float64", "uint32", "uint64", "complex64", "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz",
  "float8e5m2", "float8e5m2fnuz", "uint4", "int4", "float4e2m1",
];

export function dtypeFromOnnx(code: number): DType | undefined {
  return BY_CODE.get(code);
}

export function onnxTypeName(code: number): string {
  return ONNX_DATA_TYPE_NAMES[code] ?? `type ${code}`;
}

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4, float64: 8, float16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1,
};

export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float64" || dtype === "float16";
}

export function isInteger(dtype: DType): boolean {
  return dtype === "int64" || dtype === "int32" || dtype === "int8" || dtype === "uint8";
}

/** A new zero-filled typed array of the storage type for `dtype`. */
export function allocate(dtype: DType, length: number): TypedArray {
  switch (dtype) {
    case "float32": return new Float32Array(length);
    case "float64": return new Float64Array(length);
    case "float16": return new Uint16Array(length);
    case "int64": return new BigInt64Array(length);
    case "int32": return new Int32Array(length);
    case "int8": return new Int8Array(length);
    case "uint8":
    case "bool": return new Uint8Array(length);
  }
}

/** The dtype a typed array stores, where that is unambiguous (Uint8Array is uint8, Uint16Array float16). */
export function dtypeOfArray(data: TypedArray): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint16Array) return "float16";
  return "uint8";
}

/** Copies bytes (little-endian, as ONNX raw_data stores them) into a typed array of `dtype`. */
export function arrayFromBytes(dtype: DType, bytes: Uint8Array): TypedArray {
  const size = BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const out = allocate(dtype, bytes.byteLength / size);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  return out;
}

export function bytesOfArray(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
