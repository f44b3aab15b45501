#include "quiesce/echo.hpp"

namespace quiesce::behaviours {

void echo::on_data(std::string_view bytes, connection_io& io) {
  io.write(bytes);
}

void echo::on_stop(connection_io&) {
  // Everything read so far was written back in on_data: nothing to finish.
}

bool echo::idle() const {
  // Echo never holds input back; bytes written but not yet sent are the
  // framework's to flush before the FIN.
  return true;
}

} // namespace quiesce::behaviours
