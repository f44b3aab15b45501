#pragma once

/// @file
/// The admin endpoint (`--admin=HOST:PORT`: `/healthz`, `/readyz`,
/// `/metrics`; the README's "Admin endpoint"). A server binary offers it by
/// calling `add_admin_endpoint()` before `run_server` (library
/// quiesce::admin); without it, `--admin` is a usage error.

namespace quiesce {

/// Registers the admin endpoint with the server process.
void add_admin_endpoint();

} // namespace quiesce
