/* The version of this build: `agentcell --version`, MCP's serverInfo, agentkernel_build_info
 * and GET /stats. */
#ifndef AGENTCELL_VERSION_H
#define AGENTCELL_VERSION_H

#define AGENTCELL_VERSION "0.1.0"

#endif
