// Text a stranger sent (a device id, a request path, an error string from a device) on its way into
// a log line: control characters are escaped so a "\n" cannot forge a second log line and an ESC
// sequence cannot drive the operator's terminal. Used by mallornd and mallorn-agent for every
// client- or server-supplied string they log.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace mallorn::core {

// C0 controls, DEL and the C1 controls (U+0080..U+009F as UTF-8) become \n, \r, \t, \\ or \xHH;
// bytes that are not valid UTF-8 become \xHH; a backslash becomes "\\" so an escape cannot be faked.
// Longer input is cut at `max_bytes` (before escaping) and marked with "...".
std::string log_safe(std::string_view text, std::size_t max_bytes = 1024);

}  // namespace mallorn::core
