// Test launcher for whole-instance tests of this area: every program through
// mod.ts (tests/launch.ts).

import "../../launch.ts";
