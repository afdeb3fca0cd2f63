package server

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// writeJSON writes v as compact JSON without HTML escaping, byte for byte
// what the original service (spray-json) wrote for the same value, with
// Content-Type application/json.
func writeJSON(c *gin.Context, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		c.Data(http.StatusInternalServerError, "application/json", []byte(`{"code":"internal","error":"cannot encode the response"}`))
		return
	}
	c.Data(status, "application/json", bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
