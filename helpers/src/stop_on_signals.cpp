#include "procfix/helpers/stop_on_signals.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace procfix {
namespace {

std::atomic<bool> g_instance_exists{false};

void validate(const StopOnSignalsOptions& options) {
  if (options.signals.empty()) {
    throw StopOnSignalsError("StopOnSignalsOptions::signals is empty; name at least one signal");
  }
  for (std::size_t i = 0; i < options.signals.size(); ++i) {
    const int sig = options.signals[i];
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP) {
      throw StopOnSignalsError("StopOnSignalsOptions::signals holds " + std::to_string(sig) +
                               ", which is not a catchable signal");
    }
    if (std::count(options.signals.begin(), options.signals.end(), sig) > 1) {
      throw StopOnSignalsError("StopOnSignalsOptions::signals names signal " + std::to_string(sig) +
                               " twice");
    }
  }
  if (options.forced_exit_status &&
      (*options.forced_exit_status < 0 || *options.forced_exit_status > 255)) {
    throw StopOnSignalsError("StopOnSignalsOptions::forced_exit_status is " +
                             std::to_string(*options.forced_exit_status) +
                             "; an exit status must be 0..255");
  }
}

// Claims the one-per-process slot; released by the Impl destructor.
void claim_instance() {
  bool expected = false;
  if (!g_instance_exists.compare_exchange_strong(expected, true)) {
    throw StopOnSignalsError(
        "a StopOnSignals already exists in this process; signal dispositions are process-wide, "
        "so create exactly one and share its token()");
  }
}

}  // namespace

struct StopOnSignals::Impl {
  Impl(boost::asio::io_context* io, StopOnSignalsOptions opts)
      : options{std::move(opts)},
        own_io{io == nullptr ? std::make_unique<boost::asio::io_context>(1) : nullptr},
        set{io != nullptr ? *io : *own_io} {
    for (const int sig : options.signals) {
      boost::system::error_code ec;
      set.add(sig, ec);
      if (ec) {
        throw StopOnSignalsError("StopOnSignals cannot handle signal " + std::to_string(sig) +
                                 ": " + ec.message());
      }
      // Asio 1.81 installs its handler without SA_RESTART; add it so that the server's blocking
      // calls are not failed with EINTR by a shutdown signal.
      struct sigaction action {};
      if (::sigaction(sig, nullptr, &action) == 0) {
        action.sa_flags |= SA_RESTART;
        ::sigaction(sig, &action, nullptr);
      }
    }
    arm();
    if (own_io) {
      thread = std::thread{[this] { own_io->run(); }};
    }
  }

  ~Impl() {
    if (own_io) {
      own_io->stop();
      if (thread.joinable()) thread.join();
    }
  }

  void arm() {
    set.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;  // operation_aborted: the set is being destroyed
      on_signal(sig);
      arm();
    });
  }

  void on_signal(int sig) {
    int expected = 0;
    if (first_signal.compare_exchange_strong(expected, sig)) {
      source.request_stop();
      return;
    }
    if (options.force_exit_on_second_signal) {
      ::_exit(options.forced_exit_status.value_or(128 + sig));
    }
  }

  StopOnSignalsOptions options;
  std::stop_source source;
  std::atomic<int> first_signal{0};
  std::unique_ptr<boost::asio::io_context> own_io;  // declared before `set`: outlives it
  boost::asio::signal_set set;
  std::thread thread;
};

StopOnSignals::StopOnSignals(boost::asio::io_context& io, StopOnSignalsOptions options) {
  validate(options);
  claim_instance();
  try {
    impl_ = std::make_unique<Impl>(&io, std::move(options));
  } catch (...) {
    g_instance_exists.store(false);
    throw;
  }
}

StopOnSignals::StopOnSignals(StopOnSignalsOptions options) {
  validate(options);
  claim_instance();
  try {
    impl_ = std::make_unique<Impl>(nullptr, std::move(options));
  } catch (...) {
    g_instance_exists.store(false);
    throw;
  }
}

StopOnSignals::~StopOnSignals() {
  impl_.reset();
  g_instance_exists.store(false);
}

std::stop_token StopOnSignals::token() const noexcept {
  return impl_->source.get_token();
}

std::optional<int> StopOnSignals::signal() const noexcept {
  const int sig = impl_->first_signal.load();
  if (sig == 0) return std::nullopt;
  return sig;
}

void StopOnSignals::request_stop() noexcept {
  impl_->source.request_stop();
}

}  // namespace procfix
