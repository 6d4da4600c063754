// lime_init_caf: registration of lime's CAF types and modules.
#include "actors/type_ids.h"

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

namespace lime {

void lime_init_caf(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::lime>();
  cfg.load<caf::io::middleman>();
}

}  // namespace lime
