package ledger

import (
	"container/list"
	"sync"

	"github.com/otpledger/otpledger/events"
)

// lru is a bounded least-recently-used map of loaded aggregates. It is safe
// for concurrent use.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recent; values are *lruItem[V]
	items map[events.AggregateRef]*list.Element
	// older, when set, reports whether v is older than have: put then keeps
	// have, so that a value read before another was stored never replaces it.
	older func(have, v V) bool
}

type lruItem[V any] struct {
	key events.AggregateRef
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), items: make(map[events.AggregateRef]*list.Element)}
}

func (c *lru[V]) get(k events.AggregateRef) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruItem[V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(k events.AggregateRef, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		it := el.Value.(*lruItem[V])
		if c.older == nil || !c.older(it.val, v) {
			it.val = v
		}
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&lruItem[V]{key: k, val: v})
	if c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruItem[V]).key)
	}
}

func (c *lru[V]) remove(k events.AggregateRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
}
