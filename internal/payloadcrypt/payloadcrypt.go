// Package payloadcrypt encrypts the payloads the service writes into
// Temporal (workflow inputs, signals, query answers, activity arguments and
// results, failure messages) with AES-256-GCM, as a Temporal PayloadCodec:
// Temporal's servers, its database and its Web UI see ciphertext. Keys have
// IDs, so a new key can become current while payloads written under older
// keys stay readable. Workflow IDs, signal and query names are not payloads
// and stay in clear (and workflow IDs carry user IDs).
package payloadcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
)

// Metadata of an encrypted payload.
const (
	// EncodingEncrypted is the payload's "encoding".
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key a payload was encrypted with.
	MetadataKeyID = "encryption-key-id"
	// MetadataCipher names the cipher.
	MetadataCipher = "encryption-cipher"
	cipherName     = "AES256-GCM"
)

// ErrUnknownKey: a payload names a key the keys file does not hold.
var ErrUnknownKey = errors.New("payload encrypted with a key this process does not have")

// Codec is the encrypting PayloadCodec.
type Codec struct {
	current string
	keys    map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// KeysFile is the keys file's layout (YAML):
//
//	current: 2026-12
//	keys:
//	  2026-11: <base64 of 32 random bytes>   # still decrypts older payloads
//	  2026-12: <base64 of 32 random bytes>   # encrypts new payloads
//
// (`head -c 32 /dev/urandom | base64` makes a key.)
type KeysFile struct {
	Current string            `yaml:"current"`
	Keys    map[string]string `yaml:"keys"`
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Load reads a keys file.
func Load(path string) (*Codec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("temporal.encryption.keysFile: %w", err)
	}
	var f KeysFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("temporal.encryption.keysFile %s: %w", path, err)
	}
	c, err := New(f)
	if err != nil {
		return nil, fmt.Errorf("temporal.encryption.keysFile %s: %w", path, err)
	}
	return c, nil
}

// New builds a Codec from keys.
func New(f KeysFile) (*Codec, error) {
	c := &Codec{current: f.Current, keys: map[string]cipher.AEAD{}}
	for id, b64 := range f.Keys {
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("key ID %q: use 1 to 64 letters, digits, '.', '_' or '-'", id)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("key %q must be 32 bytes in base64 (AES-256)", id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.keys[id] = aead
	}
	if _, ok := c.keys[f.Current]; !ok {
		return nil, fmt.Errorf("current key %q is not among the keys", f.Current)
	}
	return c, nil
}

// CurrentKeyID is the ID of the key new payloads are encrypted with.
func (c *Codec) CurrentKeyID() string { return c.current }

// Encode encrypts every payload with the current key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.keys[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.current),
				MetadataCipher:             []byte(cipherName),
			},
			// The key ID is authenticated too: a payload cannot be passed
			// off as encrypted under another key.
			Data: aead.Seal(nonce, nonce, plain, []byte(c.current)),
		}
	}
	return out, nil
}

// Decode decrypts the encrypted payloads and passes the others (written
// before encryption was turned on) through.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.keys[id]
		if !ok {
			return nil, fmt.Errorf("%w (key ID %q)", ErrUnknownKey, id)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return nil, errors.New("decrypt payload: too short")
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: %w", id, err)
		}
		var decoded commonpb.Payload
		if err := proto.Unmarshal(plain, &decoded); err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
		out[i] = &decoded
	}
	return out, nil
}

// DataConverter is Temporal's default converter with c encrypting its
// output; nil c gives the default converter.
func DataConverter(c *Codec) converter.DataConverter {
	if c == nil {
		return converter.GetDefaultDataConverter()
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter encodes failure messages and stack traces as payloads
// through dc, so they are encrypted too.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
}
