#pragma once

/// @file
/// A line protocol, written outside quiesce against its installed package.
///
/// Wire format: lines ending in `\n`; each is answered with `> ` and the line.
/// Who closes: the client, or the server when it stops.
/// On `stop`: a line half received is finished when the rest arrives (busy
/// until then); then the connection closes.

#include <string>

#include "quiesce/behaviour.hpp"

class line_protocol final : public quiesce::behaviour {
public:
  void on_data(std::string_view bytes, quiesce::connection_io& io) override;

  void on_stop(quiesce::connection_io& io) override;

  bool idle() const override;

private:
  std::string partial_;
};
