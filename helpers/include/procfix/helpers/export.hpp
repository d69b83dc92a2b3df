// PROCFIX_HELPERS_API marks the declarations libprocfix_helpers exports. The library is built
// with hidden visibility (-fvisibility=hidden): what is not marked is internal and, in the shared
// library, not visible to programs.
#pragma once

#define PROCFIX_HELPERS_API [[gnu::visibility("default")]]
