// all_tasks() and dump_tasks(): read what each task's record says it waits on.
#include "asyncio/introspect.hpp"

#include <cstdio>
#include <ostream>

#include "asyncio/detail/task_record.hpp"
#include "asyncio/detail/timer_heap.hpp"
#include "asyncio/pollable.hpp"

namespace asyncio {

namespace {

using detail::TaskRecord;
using detail::TaskState;

std::string direction(unsigned events) {
  std::string text;
  if (events & detail::kPollRead) text = "read";
  if (events & detail::kPollWrite) text += text.empty() ? "write" : "+write";
  return text.empty() ? "?" : text;
}

std::string address(const void* object) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", object);
  return text;
}

std::string state_of(const Loop& loop, const TaskRecord* task) {
  if (task == detail::scheduler_of(loop).current()) return "running";
  return task->state == TaskState::kSuspended ? "waiting" : "ready";
}

void describe_wait(const TaskRecord* task, Micros now, TaskInfo& info) {
  const bool timed = detail::TimerHeap::contains(task);
  info.until = timed ? task->due : -1;
  info.waiting_us = now - task->waiting_since;
  info.object = task->wait_object;
  if (!task->waits_on) {
    // A bare suspend with a deadline is a sleep; without one, something outside the list above.
    info.waits_on = timed ? "sleep" : "suspend";
    return;
  }
  info.waits_on = task->waits_on;
  if (task->wait_fd >= 0) {
    info.detail = "fd " + std::to_string(task->wait_fd) + " " + direction(task->wait_events);
  } else if (info.waits_on == "await") {
    info.detail = "task '" + static_cast<const TaskRecord*>(task->wait_object)->name + "'";
  } else if (task->wait_object) {
    info.detail = address(task->wait_object);
    if (task->wait_events) {
      // Two appends rather than `" " + direction(...)`: GCC 12 at -O3 misreads the latter as an
      // overlapping memcpy (-Wrestrict) and -Werror builds would fail.
      info.detail += ' ';
      info.detail += direction(task->wait_events);
    }
  }
}

std::string milliseconds(Micros us) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", static_cast<double>(us) / 1000.0);
  return text;
}

}  // namespace

std::vector<TaskInfo> all_tasks(Loop& loop) {
  detail::Scheduler& scheduler = detail::scheduler_of(loop);
  scheduler.check_thread("all_tasks");
  std::vector<TaskInfo> tasks;
  const Micros now = loop.is_running() ? scheduler.refresh_time() : loop.time();
  const detail::List& live = scheduler.live_tasks();
  for (auto* node = live.front(); node; node = live.next(node)) {
    const TaskRecord* task = static_cast<const detail::LiveLink*>(node)->task;
    TaskInfo info;
    info.name = task->name;
    info.id = task->id;
    info.state = state_of(loop, task);
    if (info.state == "waiting") describe_wait(task, now, info);
    tasks.push_back(std::move(info));
  }
  return tasks;
}

void dump_tasks(std::ostream& out, Loop& loop) {
  const std::vector<TaskInfo> tasks = all_tasks(loop);
  const Micros now = loop.time();
  out << tasks.size() << " task(s) on the " << loop.backend_name() << " loop\n";
  char line[256];
  std::snprintf(line, sizeof line, "%6s  %-20s %-8s %-20s %-22s %10s %s\n", "id", "name", "state",
                "waits on", "object", "for", "until");
  out << line;
  for (const TaskInfo& task : tasks) {
    const std::string waited = task.state == "waiting" ? milliseconds(task.waiting_us) : "";
    const std::string until = task.until >= 0 ? "in " + milliseconds(task.until - now) : "";
    std::snprintf(line, sizeof line, "%6llu  %-20s %-8s %-20s %-22s %10s %s\n",
                  static_cast<unsigned long long>(task.id), task.name.c_str(), task.state.c_str(),
                  task.waits_on.c_str(), task.detail.c_str(), waited.c_str(), until.c_str());
    out << line;
  }
}

}  // namespace asyncio
