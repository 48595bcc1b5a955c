// example_plugin.h — the example plugin exports only glm_plugin_init (glm_plugin.h).
#include "glm_plugin.h"
const glm_plugin *glm_plugin_init(void);
