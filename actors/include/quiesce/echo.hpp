#pragma once

/// @file
/// The echo protocol.
///
/// Wire format: none; every byte received is written back, in order.
/// Who closes: the peer, or the server when it stops.
/// On `stop`: bytes already read have been written back (echo answers each
/// piece as it arrives), so it is idle at once; the framework sends FIN after
/// the last echoed byte has left. Input that arrives after the stop is not
/// echoed.

#include "quiesce/behaviour.hpp"

namespace quiesce::behaviours {

class echo final : public behaviour {
public:
  void on_data(std::string_view bytes, connection_io& io) override;

  void on_stop(connection_io& io) override;

  bool idle() const override;
};

} // namespace quiesce::behaviours
