// Command apiload sends GET requests to one URL at a fixed rate (open
// loop: a slow answer does not slow the sending) for a fixed time, on
// loopback, and prints the latency percentiles. It stops by itself.
//
// usage: apiload -url http://127.0.0.1:PORT/api/v1/jobs -token-file F [-rate 200] [-duration 10s]
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	target := flag.String("url", "", "the URL to GET (loopback only)")
	tokenFile := flag.String("token-file", "", "file holding the API token")
	rate := flag.Int("rate", 200, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		fmt.Fprintln(os.Stderr, "apiload: -url must be a loopback URL")
		os.Exit(2)
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiload: -token-file:", err)
		os.Exit(2)
	}
	token := strings.TrimSpace(string(tok))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  int
		wg        sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	end := time.After(*duration)
	sent := 0
loop:
	for {
		select {
		case <-end:
			break loop
		case <-tick.C:
			sent++
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", *target, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				start := time.Now()
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					latencies = append(latencies, d)
				} else {
					failures++
				}
			}()
		}
	}
	wg.Wait()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("%d requests in %v (%d/s asked): %d ok, %d failed; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		sent, *duration, *rate, len(latencies), failures, ms(pct(0.50)), ms(pct(0.99)), ms(pct(1)))
	if failures > 0 {
		os.Exit(1)
	}
}
