package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// codec is how keys, prefixes and values are written on the command line and
// printed: as text, or for binary data as hex or base64.
type codec int

const (
	codecText codec = iota
	codecHex
	codecBase64
)

func parseCodec(flag, s string) (codec, error) {
	switch s {
	case "text":
		return codecText, nil
	case "hex":
		return codecHex, nil
	case "base64":
		return codecBase64, nil
	}
	return 0, usagef("%s %q: want text, hex or base64", flag, s)
}

// codec is the encoding of keys and prefixes: --key-encoding, else --hex or
// --base64, else text.
func (a *app) codec() (codec, error) {
	switch {
	case a.g.hex && a.g.base64:
		return 0, usagef("--hex and --base64 exclude each other: pick one")
	case a.g.keyEncoding != "":
		return parseCodec("--key-encoding", a.g.keyEncoding)
	case a.g.hex:
		return codecHex, nil
	case a.g.base64:
		return codecBase64, nil
	}
	return codecText, nil
}

// valueCodec is the encoding of values: --value-encoding, else what --hex
// or --base64 chose for both, else text. A text key with a binary value
// takes --value-encoding alone.
func (a *app) valueCodec() (codec, error) {
	if a.g.hex && a.g.base64 {
		return 0, usagef("--hex and --base64 exclude each other: pick one")
	}
	if a.g.valueEncoding != "" {
		return parseCodec("--value-encoding", a.g.valueEncoding)
	}
	switch {
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

// show renders b for a human at a terminal: as encode does, except that
// text which is not printable UTF-8 is quoted with Go escapes ("k\x00\xff"),
// so a binary key never sends raw bytes to the terminal.
func (c codec) show(b []byte) string {
	if c == codecText && !printable(b) {
		return strconv.Quote(string(b))
	}
	return c.encode(b)
}

// printable reports text that prints as itself: valid UTF-8 without control
// characters, and not starting with a quote (which show's quoting uses).
func printable(b []byte) bool {
	if !utf8.Valid(b) || bytes.HasPrefix(b, []byte(`"`)) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// forJSON returns the encoding a JSON document uses for data that c would
// print as text: JSON strings hold only UTF-8, so when any of the byte
// strings is not valid UTF-8 the whole document switches to base64 (as
// etcdctl's JSON does) rather than replace bytes. Its "encoding" field says
// which one it is.
func (c codec) forJSON(data ...[]byte) codec {
	if c != codecText {
		return c
	}
	for _, b := range data {
		if !utf8.Valid(b) {
			return codecBase64
		}
	}
	return c
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
