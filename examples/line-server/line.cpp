#include "line.hpp"

void line_protocol::on_data(std::string_view bytes,
                            quiesce::connection_io& io) {
  for (auto c : bytes) {
    partial_ += c;
    if (c == '\n') {
      io.write("> " + partial_);
      partial_.clear();
    }
  }
}

void line_protocol::on_stop(quiesce::connection_io&) {
  // Nothing to do: a half-received line keeps the connection busy (idle()
  // is false) until its end arrives, then the framework closes.
}

bool line_protocol::idle() const {
  return partial_.empty();
}
