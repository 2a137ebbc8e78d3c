// Receive hookrelay webhooks and verify their signatures with Go's standard library.
//
//	WEBHOOK_SECRET=whsec_... PORT=3000 go run .
//
// Answers 204 to a valid delivery, 400 to anything else.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const tolerance = 5 * time.Minute

// verify returns nil when body carries a valid, fresh hookrelay signature.
func verify(key []byte, header http.Header, body []byte, now time.Time) error {
	id := header.Get("webhook-id")
	timestamp := header.Get("webhook-timestamp")
	signatures := header.Get("webhook-signature")
	if id == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook-* headers")
	}

	// Refuse old (replayed) and future timestamps.
	seconds, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad webhook-timestamp")
	}
	if age := now.Sub(time.Unix(seconds, 0)); age > tolerance || age < -tolerance {
		return errors.New("timestamp outside the tolerance")
	}

	// Sign "<id>.<timestamp>.<raw body>" and compare, in constant time, with every
	// `v1,<base64>` entry: during a secret rotation there are two.
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	for _, entry := range strings.Split(signatures, " ") {
		version, signature, found := strings.Cut(entry, ",")
		if !found || version != "v1" {
			continue
		}
		given, err := base64.StdEncoding.DecodeString(signature)
		if err == nil && hmac.Equal(given, expected) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

func main() {
	secret := os.Getenv("WEBHOOK_SECRET")
	if !strings.HasPrefix(secret, "whsec_") {
		log.Fatal("set WEBHOOK_SECRET to the webhook's signing secret (whsec_...)")
	}
	// The HMAC key is the base64-decoded part after `whsec_`.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		log.Fatalf("WEBHOOK_SECRET: %v", err)
	}

	// Deliveries are at least once: remember the ids already handled (use your database).
	var mu sync.Mutex
	seen := map[string]bool{}

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Verify the raw bytes, before any JSON decoding.
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := verify(key, r.Header, body, time.Now()); err != nil {
			fmt.Printf("rejected: %v\n", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		mu.Lock()
		duplicate := seen[id]
		seen[id] = true
		mu.Unlock()
		if duplicate {
			fmt.Printf("duplicate %s\n", id)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		var event struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &event); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Printf("verified %s %s\n", id, event.Type)
		w.WriteHeader(http.StatusNoContent) // answer fast; do slow work after
	})

	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %d\n", listener.Addr().(*net.TCPAddr).Port)
	log.Fatal(http.Serve(listener, nil))
}
