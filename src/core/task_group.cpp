// task_group(): waiting for the group's tasks, cancelling them on a failure.
#include "asyncio/task_group.hpp"

#include "asyncio/detail/wait_queue.hpp"

namespace asyncio {

TaskGroup::TaskGroup() : parent_(detail::running_task("task_group")) {}

void TaskGroup::check_open() const {
  if (closed_) throw RuntimeError("TaskGroup.create_task: the group has finished");
  if (aborting_) throw RuntimeError("TaskGroup.create_task: the group is shutting down");
}

void TaskGroup::adopt(const TaskBase& task) {
  Member& member = members_.emplace_back();
  member.task = task;
  member.group = this;
  member.fn = &TaskGroup::on_member_done;
  task.record_pointer()->done_callbacks.push_back(&member);
  ++running_;
}

void TaskGroup::on_member_done(detail::DoneCallback* self, detail::TaskRecord* finished) {
  TaskGroup& group = *static_cast<Member*>(self)->group;
  --group.running_;
  if (finished->error && !finished->cancelled) {
    group.failures_.push_back(finished->error);
    group.abort();
    group.cancel_body();
  }
  if (group.running_ == 0 && group.parent_waiting_) {
    group.parent_->scheduler->wake(group.parent_, detail::WakeReason::kEvent);
  }
}

void TaskGroup::abort() {
  aborting_ = true;
  for (Member& member : members_) member.task.cancel();  // false for those already done
}

void TaskGroup::cancel_body() {
  if (body_done_ || body_cancelled_) return;
  body_cancelled_ = true;
  // A member fails only while the caller is parked (one thread), so the cancellation surfaces
  // at that suspension point, or in the task the caller awaits (cancel() forwards to it). A
  // cancel() from outside at the same moment merges with this one; CPython counts cancel
  // requests to tell them apart. Either way the failure is what the group raises.
  parent_->scheduler->cancel(parent_);
}

void TaskGroup::finish(std::exception_ptr body_error) {
  body_done_ = true;
  if (body_error) abort();
  std::exception_ptr cancelled;  // the caller was cancelled while waiting
  while (running_ > 0) {
    parent_waiting_ = true;
    try {
      detail::note_wait(parent_, "TaskGroup");
      parent_->scheduler->suspend();
    } catch (const CancelledError&) {
      // As CPython: take the group down, but still wait for it; the tasks reference it.
      if (!cancelled) cancelled = std::current_exception();
      abort();
    }
    parent_waiting_ = false;
  }
  closed_ = true;
  bool body_was_cancelled = false;
  if (body_error) {
    try {
      std::rethrow_exception(body_error);
    } catch (const CancelledError&) {
      body_was_cancelled = true;
    } catch (...) {
    }
  }
  std::exception_ptr raised;
  // A failure outranks a cancellation, as in CPython (where both end up in the group).
  if (body_error && !body_was_cancelled) {
    raised = body_error;
  } else if (!failures_.empty()) {
    raised = failures_.front();
  } else {
    raised = body_error ? body_error : cancelled;
  }
  Loop& loop = parent_->scheduler->loop();
  for (const auto& failure : failures_) {
    if (failure == raised) continue;
    loop.call_exception_handler(
        {"TaskGroup: a task's exception was not raised (another one was)", failure, parent_->name});
  }
  if (raised) std::rethrow_exception(raised);
}

}  // namespace asyncio
