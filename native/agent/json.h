// The agent's replies are one JSON object per line: core values, records and names written
// out, with NaN (unknown) as null as the addon's records are decoded. Requests are one line of
// space-separated words: a verb, then numbers or names.
#pragma once

#include <string>
#include <vector>

#include "core/value.h"
#include "core/wire.h"

namespace allocstats {
namespace agent {

void AppendQuoted(std::string& out, const std::string& s);
void AppendNumber(std::string& out, double v);
void AppendNumbers(std::string& out, const double* values, size_t count);
void AppendNames(std::string& out, FieldNames names);
void AppendValue(std::string& out, const Value& value);

// A request's words. False when the line holds a byte no request has (a control character or
// a byte outside ASCII).
bool SplitWords(const std::string& line, std::vector<std::string>& words);
// A whole word read as a number ("nan" included); false when it is not one.
bool ParseNumber(const std::string& word, double& out);

}  // namespace agent
}  // namespace allocstats
