package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
)

// codec is how keys, prefixes and values are written on the command line and
// printed: as text, or for binary data as hex or base64.
type codec int

const (
	codecText codec = iota
	codecHex
	codecBase64
)

func (a *app) codec() (codec, error) {
	switch {
	case a.g.hex && a.g.base64:
		return 0, usagef("--hex and --base64 exclude each other: pick one")
	case a.g.hex:
		return codecHex, nil
	case a.g.base64:
		return codecBase64, nil
	}
	return codecText, nil
}

func (c codec) String() string {
	switch c {
	case codecHex:
		return "hex"
	case codecBase64:
		return "base64"
	}
	return "text"
}

// decode turns a command-line argument into bytes; what names the argument
// in the error.
func (c codec) decode(what, s string) ([]byte, error) {
	var b []byte
	var err error
	switch c {
	case codecHex:
		b, err = hex.DecodeString(s)
	case codecBase64:
		b, err = base64.StdEncoding.DecodeString(s)
	default:
		return []byte(s), nil
	}
	if err != nil {
		return nil, usagef("%s %q is not valid %s: %v", what, s, c, err)
	}
	return b, nil
}

// decodeStdin decodes a value read from stdin. Text is taken byte for byte;
// encoded input may end with a newline, as "echo 00ff | statectl --hex put"
// produces.
func (c codec) decodeStdin(raw []byte) ([]byte, error) {
	if c == codecText {
		return raw, nil
	}
	return c.decode("the value on stdin", string(bytes.TrimSpace(raw)))
}

func (c codec) encode(b []byte) string {
	switch c {
	case codecHex:
		return hex.EncodeToString(b)
	case codecBase64:
		return base64.StdEncoding.EncodeToString(b)
	}
	return string(b)
}

// keyArg returns the codec the flags chose and the KEY argument decoded with
// it.
func (a *app) keyArg(arg string) (codec, []byte, error) {
	c, err := a.codec()
	if err != nil {
		return c, nil, err
	}
	key, err := c.decode("KEY", arg)
	return c, key, err
}
