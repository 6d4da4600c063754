# Shell helpers shared by scripts/demo and scripts/bench-cluster: start lime-node processes on loopback, wait for
# their "listening: HOST:PORT" line, and stop them all on exit. Source it; needs $bin (the apps folder) and $model.
nodes_pids=()
nodes_dir=$(mktemp -d /tmp/lime-cluster.XXXXXX)

stop_nodes() {
  for pid in "${nodes_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${nodes_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  nodes_pids=()
}
cleanup_nodes() { stop_nodes; rm -rf "$nodes_dir"; }

# start_node NAME ARGS... : starts a node, waits (10 s at most) for its listening line, sets $node_port.
start_node() {
  local name=$1; shift
  "$bin/lime-node" --name "$name" -m "$model" "$@" >"$nodes_dir/$name.out" 2>"$nodes_dir/$name.log" &
  nodes_pids+=($!)
  local pid=$!
  for _ in $(seq 1 200); do
    if grep -q '^listening: ' "$nodes_dir/$name.out" 2>/dev/null; then
      node_port=$(sed -n 's/^listening: .*:\([0-9]*\)$/\1/p' "$nodes_dir/$name.out")
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "node $name did not start:" >&2
      cat "$nodes_dir/$name.log" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "node $name did not print its listening line in 10 s" >&2
  return 1
}

# wait_serving PORT : polls the head's status until it serves (10 s at most).
wait_serving() {
  for _ in $(seq 1 100); do
    if "$bin/lime-chat" --connect "127.0.0.1:$1" --status 2>/dev/null | grep -q '^cluster: serving'; then return 0; fi
    sleep 0.1
  done
  echo "the cluster did not start serving in 10 s" >&2
  return 1
}
