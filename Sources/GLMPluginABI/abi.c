// abi.c — the plugin ABI is a header; SwiftPM needs one source file per C target.
#include "glm_plugin.h"

const uint32_t glm_plugin_abi_version = GLM_PLUGIN_ABI_VERSION;
