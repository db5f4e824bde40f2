// A minimal intrusive doubly-linked list: nodes live inside the waiting task's frame, so
// waiting allocates nothing and a cancelled waiter can unlink itself in O(1).
#pragma once

namespace asyncio::detail {

struct ListNode {
  ListNode* prev = nullptr;
  ListNode* next = nullptr;
  bool linked() const { return prev != nullptr; }
  void unlink() {
    if (!linked()) return;
    prev->next = next;
    next->prev = prev;
    prev = next = nullptr;
  }
};

/// Circular list with a sentinel. Not copyable: nodes point at the sentinel.
class List {
 public:
  List() { head_.prev = head_.next = &head_; }
  List(const List&) = delete;
  List& operator=(const List&) = delete;
  bool empty() const { return head_.next == &head_; }
  ListNode* front() const { return empty() ? nullptr : head_.next; }
  void push_back(ListNode* node) {
    node->prev = head_.prev;
    node->next = &head_;
    head_.prev->next = node;
    head_.prev = node;
  }
  /// The node after `node`, or nullptr at the end (iteration that tolerates unlinking `node`
  /// as long as the caller fetched the next node first).
  ListNode* next(const ListNode* node) const { return node->next == &head_ ? nullptr : node->next; }
  ListNode* pop_front() {
    ListNode* node = front();
    if (node) node->unlink();
    return node;
  }

 private:
  ListNode head_;
};

}  // namespace asyncio::detail
