// Command drive sends a fixed number of GET requests to one URL, one
// after another over one keep-alive connection, and fails on any answer
// but 200. It is the load of bench/instructions.sh: there a count of
// requests, not a duration, is what the instruction count of Caddy is
// divided by, so every run must send exactly the same requests.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:28080/", "where to send the requests")
	token := flag.String("token", "", "the bearer token to send (empty: no Authorization)")
	n := flag.Int("n", 1000, "how many requests")
	flag.Parse()

	// One connection, kept alive: a connection's setup is not what is
	// measured, and under valgrind a request takes milliseconds.
	client := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
	}
	req, err := http.NewRequest(http.MethodGet, *url, nil)
	if err != nil {
		log.Fatal(err)
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	for i := 0; i < *n; i++ {
		resp, err := client.Do(req)
		if err != nil {
			log.Fatalf("request %d: %v", i+1, err)
		}
		// Read the body to the end so the connection is reused.
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			log.Fatalf("request %d: reading the body: %v", i+1, err)
		}
		if resp.StatusCode != http.StatusOK {
			log.Fatalf("request %d: %s, want 200 OK", i+1, resp.Status)
		}
	}
}
