// The flow canvas: nodes and the ways between them, drawn with Vue Flow (served with kehu: kehu/ui/vendor).
// The page on the server holds the graph; this draws it and reports what the user does (add a node from the
// palette, connect, move, select, delete, undo), and the server answers with the graph as it now is.
import { markRaw } from "vue";
import { VueFlow, Handle, Position, MarkerType } from "@vue-flow/core";
import { Background } from "@vue-flow/background";
import { Controls } from "@vue-flow/controls";

const FlowNode = {
  props: ["id", "data", "selected"],
  components: { Handle },
  setup() {
    return { Position };
  },
  template: `
    <div class="kehu-node" :class="['kehu-node--' + data.type, { 'kehu-node--problem': data.problems.length,
         'kehu-node--selected': selected }]" :data-testid="'canvas-node-' + id" :title="data.problems.join('\\n')">
      <Handle v-if="data.enterable" type="target" :position="Position.Top" />
      <div class="kehu-node__head">
        <span class="material-icons kehu-node__icon">{{ data.icon }}</span>
        <span class="kehu-node__kind">{{ data.kind }}</span>
        <span v-if="data.mark" class="kehu-node__mark" :title="data.mark" :data-testid="'canvas-mark-' + id">
          <span class="material-icons">{{ data.markIcon }}</span>{{ data.mark }}</span>
        <span v-if="data.problems.length" class="material-icons kehu-node__warn"
              data-testid="canvas-node-problem">error</span>
      </div>
      <div class="kehu-node__label">{{ data.label }}</div>
      <div v-if="data.summary" class="kehu-node__summary">{{ data.summary }}</div>
      <div v-if="data.counts" class="kehu-node__counts" :data-testid="'canvas-counts-' + id">{{ data.counts }}</div>
      <div v-if="data.ways.length > 1" class="kehu-node__ways">
        <span v-for="way in data.ways" :key="way.id" class="kehu-node__way">{{ way.label }}</span>
      </div>
      <Handle v-for="(way, i) in data.ways" :key="way.id" :id="way.id" type="source" :position="Position.Bottom"
              :style="{ left: ((i + 0.5) * 100 / data.ways.length) + '%' }" :data-testid="'handle-' + id + '-' + way.id" />
    </div>`,
};

export default {
  components: { VueFlow, Background, Controls },
  props: {
    graph: { type: Object, default: () => ({ nodes: [], edges: [] }) },
    palette: { type: Array, default: () => [] },
    editable: { type: Boolean, default: false },
    structure: { type: Boolean, default: true },
    texts: { type: Object, default: () => ({}) },
  },
  emits: ["add", "connect", "moved", "select", "remove", "undo", "redo"],
  data() {
    return { nodeTypes: { flow: markRaw(FlowNode) } };
  },
  computed: {
    nodes() {
      return this.graph.nodes.map((node) => ({
        id: node.id, type: "flow", position: node.position, data: node, selected: node.selected || false,
      }));
    },
    edges() {
      return this.graph.edges.map((edge) => ({
        id: `${edge.from}>${edge.way}`, source: edge.from, target: edge.to, sourceHandle: edge.way,
        label: edge.label || undefined, type: "smoothstep", markerEnd: MarkerType.ArrowClosed,
        labelBgPadding: [6, 3], labelBgBorderRadius: 4, class: "kehu-edge",
        data: { from: edge.from, way: edge.way },
      }));
    },
  },
  watch: {
    graph(now, before) {
      // a node added (from the palette, by undo): show the whole drawing, the new node in it
      const had = new Set((before?.nodes || []).map((node) => node.id));
      if (now.nodes.some((node) => !had.has(node.id))) setTimeout(() => this.fit(), 50);
    },
  },
  methods: {
    onConnect(connection) {
      if (connection.source === connection.target) return;
      this.$emit("connect", { from: connection.source, to: connection.target, way: connection.sourceHandle });
    },
    onNodeClick(event) {
      this.$emit("select", { id: event.node.id });
    },
    onPaneClick() {
      this.$emit("select", { id: null });
    },
    onDragStop(event) {
      const moved = event.nodes.map((node) => ({
        id: node.id, x: Math.round(node.position.x), y: Math.round(node.position.y),
      }));
      if (moved.length) this.$emit("moved", { nodes: moved });
    },
    onDragStart(event, type) {
      event.dataTransfer.setData("application/kehu-node", type);
      event.dataTransfer.effectAllowed = "move";
    },
    onDrop(event) {
      const type = event.dataTransfer.getData("application/kehu-node");
      if (!type || !this.editable) return;
      const at = this.$refs.flow.screenToFlowCoordinate({ x: event.clientX, y: event.clientY });
      this.$emit("add", { type, x: Math.round(at.x - 110), y: Math.round(at.y - 30) });
    },
    onKey(event) {
      if (!this.editable || ["INPUT", "TEXTAREA"].includes(event.target.tagName)) return;
      const key = event.key.toLowerCase();
      if ((event.ctrlKey || event.metaKey) && key === "z") {
        event.preventDefault();
        this.$emit(event.shiftKey ? "redo" : "undo");
      } else if ((event.ctrlKey || event.metaKey) && key === "y") {
        event.preventDefault();
        this.$emit("redo");
      } else if (key === "delete" || key === "backspace") {
        const flow = this.$refs.flow;
        const nodes = flow.getSelectedNodes.map((node) => node.id);
        const edges = flow.getSelectedEdges.map((edge) => edge.data);
        if (nodes.length || edges.length) {
          event.preventDefault();
          this.$emit("remove", { nodes, edges });
        }
      }
    },
    fit() {
      this.$refs.flow?.fitView({ padding: 0.15, maxZoom: 1 });
    },
  },
  template: `
    <div class="kehu-canvas" tabindex="0" @keydown="onKey" data-testid="flow-canvas">
      <div v-if="editable && structure" class="kehu-palette" data-testid="flow-palette">
        <div class="kehu-palette__title">{{ texts.palette }}</div>
        <div v-for="item in palette" :key="item.type" class="kehu-palette__item" draggable="true"
             :data-testid="'palette-' + item.type" :title="item.hint"
             @dragstart="onDragStart($event, item.type)" @click="$emit('add', { type: item.type, x: null, y: null })">
          <span class="material-icons">{{ item.icon }}</span><span>{{ item.label }}</span>
        </div>
        <div class="kehu-palette__hint">{{ texts.hint }}</div>
      </div>
      <div class="kehu-canvas__flow" @drop.prevent="onDrop" @dragover.prevent>
        <VueFlow ref="flow" :nodes="nodes" :edges="edges" :node-types="nodeTypes" :nodes-draggable="editable"
                 :nodes-connectable="editable && structure" :elements-selectable="true" connection-mode="strict" :delete-key-code="null"
                 :min-zoom="0.2" :max-zoom="2" :default-edge-options="{ type: 'smoothstep' }"
                 @connect="onConnect" @node-click="onNodeClick" @pane-click="onPaneClick"
                 @node-drag-stop="onDragStop" @pane-ready="fit">
          <Background pattern-color="#cfd8dc" :gap="20" />
          <Controls position="bottom-right" :show-interactive="false" />
        </VueFlow>
      </div>
    </div>`,
};
