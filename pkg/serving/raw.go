package serving

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/bmaas/bmaas/api/inference"
)

// ElementSize is the bytes of one element of a datatype in raw
// (little-endian) form: 0 for BYTES, whose elements are each a 4-byte
// length and the bytes, and -1 for a datatype KServe v2 does not know.
func ElementSize(datatype string) int {
	switch datatype {
	case "BOOL", "INT8", "UINT8":
		return 1
	case "INT16", "UINT16", "FP16", "BF16":
		return 2
	case "INT32", "UINT32", FP32:
		return 4
	case "INT64", "UINT64", FP64:
		return 8
	case BYTES:
		return 0
	}
	return -1
}

// RawSize is the length of the raw form of contents of a datatype.
func RawSize(datatype string, c *inference.InferTensorContents) int {
	switch datatype {
	case BYTES:
		n := 0
		for _, v := range c.GetBytesContents() {
			n += 4 + len(v)
		}
		return n
	case "BOOL":
		return len(c.GetBoolContents())
	case "INT8", "INT16", "INT32":
		return ElementSize(datatype) * len(c.GetIntContents())
	case "UINT8", "UINT16", "UINT32":
		return ElementSize(datatype) * len(c.GetUintContents())
	case "INT64":
		return 8 * len(c.GetInt64Contents())
	case "UINT64":
		return 8 * len(c.GetUint64Contents())
	case FP32:
		return 4 * len(c.GetFp32Contents())
	case FP64:
		return 8 * len(c.GetFp64Contents())
	}
	return 0
}

// AppendRaw appends the raw little-endian form of contents of a datatype
// to b (BYTES: each element's 4-byte length, then its bytes).
func AppendRaw(b []byte, datatype string, c *inference.InferTensorContents) []byte {
	le := binary.LittleEndian
	switch datatype {
	case BYTES:
		for _, v := range c.GetBytesContents() {
			b = le.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	case "BOOL":
		for _, v := range c.GetBoolContents() {
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case "INT8":
		for _, v := range c.GetIntContents() {
			b = append(b, byte(int8(v)))
		}
	case "INT16":
		for _, v := range c.GetIntContents() {
			b = le.AppendUint16(b, uint16(int16(v)))
		}
	case "INT32":
		for _, v := range c.GetIntContents() {
			b = le.AppendUint32(b, uint32(v))
		}
	case "UINT8":
		for _, v := range c.GetUintContents() {
			b = append(b, byte(v))
		}
	case "UINT16":
		for _, v := range c.GetUintContents() {
			b = le.AppendUint16(b, uint16(v))
		}
	case "UINT32":
		for _, v := range c.GetUintContents() {
			b = le.AppendUint32(b, v)
		}
	case "INT64":
		for _, v := range c.GetInt64Contents() {
			b = le.AppendUint64(b, uint64(v))
		}
	case "UINT64":
		for _, v := range c.GetUint64Contents() {
			b = le.AppendUint64(b, v)
		}
	case FP32:
		for _, v := range c.GetFp32Contents() {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	case FP64:
		for _, v := range c.GetFp64Contents() {
			b = le.AppendUint64(b, math.Float64bits(v))
		}
	}
	return b
}

// Elements is the number of elements of a shape; an error for a negative
// dimension or an overflow.
func Elements(shape []int64) (int, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("dimension %d is %d", i, d)
		}
		if d != 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("shape %v holds too many elements", shape)
		}
		n *= d
	}
	return int(n), nil
}

// CheckRaw checks raw is the raw form of a tensor of datatype and shape:
// its length is the elements times the element size, or, for BYTES, it
// holds exactly the shape's elements, each a 4-byte length and as many
// bytes.
func CheckRaw(datatype string, shape []int64, raw []byte) error {
	n, err := Elements(shape)
	if err != nil {
		return err
	}
	size := ElementSize(datatype)
	switch {
	case size < 0:
		return fmt.Errorf("datatype %q is not a KServe v2 datatype", datatype)
	case size > 0:
		if len(raw) != n*size {
			return fmt.Errorf("%d bytes, but a %s tensor shaped %v takes %d", len(raw), datatype, shape, n*size)
		}
		return nil
	}
	got := 0
	for i := 0; i < len(raw); got++ {
		if len(raw)-i < 4 {
			return fmt.Errorf("BYTES element %d: %d bytes left, a 4-byte length expected", got, len(raw)-i)
		}
		l := int(binary.LittleEndian.Uint32(raw[i:]))
		if l > len(raw)-i-4 {
			return fmt.Errorf("BYTES element %d is %d bytes long, %d bytes are left", got, l, len(raw)-i-4)
		}
		i += 4 + l
	}
	if got != n {
		return fmt.Errorf("%d BYTES elements, but shape %v takes %d", got, shape, n)
	}
	return nil
}

// RawContents decodes the raw form of a datatype into contents. BYTES
// elements alias raw. FP16 and BF16 have no contents field: an error.
func RawContents(datatype string, raw []byte) (*inference.InferTensorContents, error) {
	le := binary.LittleEndian
	c := &inference.InferTensorContents{}
	size := ElementSize(datatype)
	switch {
	case size < 0 || datatype == "FP16" || datatype == "BF16":
		return nil, fmt.Errorf("datatype %q has no contents field", datatype)
	case size > 0 && len(raw)%size != 0:
		return nil, fmt.Errorf("%d bytes are not a whole number of %s elements", len(raw), datatype)
	}
	switch datatype {
	case BYTES:
		for i := 0; i < len(raw); {
			if len(raw)-i < 4 {
				return nil, fmt.Errorf("BYTES data ends inside an element's length")
			}
			n := int(le.Uint32(raw[i:]))
			if n > len(raw)-i-4 {
				return nil, fmt.Errorf("BYTES element of %d bytes runs past the data", n)
			}
			c.BytesContents = append(c.BytesContents, raw[i+4:i+4+n:i+4+n])
			i += 4 + n
		}
	case "BOOL":
		c.BoolContents = make([]bool, len(raw))
		for i, v := range raw {
			c.BoolContents[i] = v != 0
		}
	case "INT8", "INT16", "INT32":
		c.IntContents = make([]int32, len(raw)/size)
		for i := range c.IntContents {
			switch size {
			case 1:
				c.IntContents[i] = int32(int8(raw[i]))
			case 2:
				c.IntContents[i] = int32(int16(le.Uint16(raw[2*i:])))
			default:
				c.IntContents[i] = int32(le.Uint32(raw[4*i:]))
			}
		}
	case "UINT8", "UINT16", "UINT32":
		c.UintContents = make([]uint32, len(raw)/size)
		for i := range c.UintContents {
			switch size {
			case 1:
				c.UintContents[i] = uint32(raw[i])
			case 2:
				c.UintContents[i] = uint32(le.Uint16(raw[2*i:]))
			default:
				c.UintContents[i] = le.Uint32(raw[4*i:])
			}
		}
	case "INT64":
		c.Int64Contents = make([]int64, len(raw)/8)
		for i := range c.Int64Contents {
			c.Int64Contents[i] = int64(le.Uint64(raw[8*i:]))
		}
	case "UINT64":
		c.Uint64Contents = make([]uint64, len(raw)/8)
		for i := range c.Uint64Contents {
			c.Uint64Contents[i] = le.Uint64(raw[8*i:])
		}
	case FP32:
		c.Fp32Contents = make([]float32, len(raw)/4)
		for i := range c.Fp32Contents {
			c.Fp32Contents[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case FP64:
		c.Fp64Contents = make([]float64, len(raw)/8)
		for i := range c.Fp64Contents {
			c.Fp64Contents[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
	}
	return c, nil
}
