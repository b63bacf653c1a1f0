// Command plain is the baseline for bench/tables.sh: a bare net/http handler that answers every
// request with a fixed 150-byte JSON body, so Gatehouse's authenticated table read can be compared
// with the cheapest possible Go HTTP response on the same machine.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18301", "address")
	flag.Parse()
	body := []byte(`[{"id":"6a1b7c1e-0000-4000-8000-000000000001","title":"The Shawshank Redemption","year":1994,"duration":142,"rating":"R","bestPictureWinner":false}]`)
	for len(body) < 150 {
		body = append(body, ' ')
	}
	body = body[:150]
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body) //nolint:errcheck
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
