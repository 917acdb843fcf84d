package memorystore

import (
	"slices"
	"time"
)

// sweepRound is how long the sweep takes to visit every shard once: a
// session that expired is found by Lookup at once, and leaves memory (and
// the persist file, and Count) within this.
const sweepRound = time.Minute

// start runs the housekeeper: the store's only background goroutine,
// ended by Destruct.
func (s *memoryStore) start() { go s.housekeep() }

// housekeep sweeps one shard per tick, so that a round of all of them
// takes sweepRound, and enforces the session limit when a login asks.
// Each step holds one shard's lock at a time, never two, and writes what
// it removed to the persist file in the background.
func (s *memoryStore) housekeep() {
	defer close(s.done)
	t := time.NewTicker(sweepRound / numShards)
	defer t.Stop()
	next := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.shards[next].DeleteExpired()
			if next++; next == numShards {
				next = 0
				s.results.DeleteExpired()
				s.prevKeys.DeleteExpired()
			}
		case <-s.trimKick:
			s.trimToLimit()
		case done := <-s.settleReq:
			for _, sh := range s.shards {
				sh.DeleteExpired()
			}
			s.results.DeleteExpired()
			s.prevKeys.DeleteExpired()
			s.trimToLimit()
			s.disk.flush(s)
			close(done)
			continue
		}
		s.disk.flush(s)
	}
}

// kickTrim asks the housekeeper to enforce the session limit; the login
// that crossed it does not wait for that.
func (s *memoryStore) kickTrim() {
	select {
	case s.trimKick <- struct{}{}:
	default: // already asked
	}
}

// settle runs a full round of housekeeping now and returns when it is
// done: every shard swept, the limit enforced, the removals written.
// Tests use it to check Count exactly.
func (s *memoryStore) settle() {
	done := make(chan struct{})
	select {
	case s.settleReq <- done:
		<-done
	case <-s.done:
	}
}

// trimToLimit drops the oldest sessions while there are more than
// maxSessions. Under a fixed TTL the oldest session is the one that
// expires first, so go-cache's expiries give the order. A FIFO of token
// hashes would cost 32 bytes per session; instead a scan, one shard at a
// time, collects the expiries, finds the cut-off, and a second scan
// removes what expires by then: a batch of 1/128 of the limit beyond what
// is needed, so that at 1M sessions it runs once per ~8k logins at the
// limit. Only the housekeeper calls it; no request waits for it, and a
// shard's lock is held for one shard's copy (go-cache's Items), never for
// the whole scan. Logins during the scan can overshoot the limit by as
// many sessions as they create meanwhile.
func (s *memoryStore) trimToLimit() {
	limit := int(s.maxSessions.Load())
	if int(s.size.Load()) <= limit {
		return
	}
	exps := make([]int64, 0, s.size.Load())
	for _, sh := range s.shards {
		sh.DeleteExpired()
		for k, it := range sh.Items() {
			if it.Object.(*memUser).u.Load() == nil {
				sh.Delete(k) // revoked: dead already
				continue
			}
			exps = append(exps, it.Expiration)
		}
	}
	if len(exps) <= limit {
		return
	}
	n := min(len(exps), len(exps)-limit+limit/128)
	slices.Sort(exps)
	cut := exps[n-1]
	for _, sh := range s.shards {
		for k, it := range sh.Items() {
			if it.Expiration <= cut { // (a tie at the cut-off goes too)
				sh.Delete(k)
			}
		}
	}
}
