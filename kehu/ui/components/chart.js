// A chart drawn by ECharts (the copy NiceGUI serves), loaded once the page has been shown instead of before it
// starts: NiceGUI's own chart imports ECharts (1.1 MB of script to read and run) up front, and the whole page, the
// home page after signing in among them, waited for it.
let library = null;

// Once the page has been painted and the browser has a moment: reading ECharts keeps the page from answering a
// click or a key for a few hundred milliseconds on a busy computer, better spent after the page is in use.
function shownAndIdle() {
  return new Promise((resolve) =>
    requestAnimationFrame(() =>
      setTimeout(() => (window.requestIdleCallback ? requestIdleCallback(resolve, { timeout: 1000 }) : resolve()), 0),
    ),
  );
}

function echarts() {
  library =
    library ||
    shownAndIdle()
      .then(() => import("nicegui-echart"))
      .then((module) => module.echarts)
      .catch((error) => {
        library = null; // the next chart tries again
        throw error;
      });
  return library;
}

// An option written ":name" holds a function's source (an axis label's formatter): made into that function.
function withFunctions(value) {
  if (Array.isArray(value)) {
    return value.map(withFunctions);
  }
  if (value && typeof value === "object") {
    const made = {};
    for (const [key, item] of Object.entries(value)) {
      if (key.startsWith(":") && typeof item === "string") {
        made[key.slice(1)] = new Function(`return (${item})`)();
      } else {
        made[key] = withFunctions(item);
      }
    }
    return made;
  }
  return value;
}

export default {
  template: "<div></div>",
  props: {
    options: Object,
  },
  async mounted() {
    let loaded;
    try {
      loaded = await echarts();
    } catch (error) {
      // (a page left open across an update of the server asks for the library at an address gone since)
      console.warn("The chart could not be drawn:", error);
      return;
    }
    if (this.removed) {
      return;
    }
    this.chart = loaded.init(this.$el);
    this.resizing = new ResizeObserver(() => this.chart.resize());
    this.resizing.observe(this.$el);
    this.draw();
  },
  beforeUnmount() {
    this.removed = true;
    this.resizing?.disconnect();
    this.chart?.dispose();
  },
  watch: {
    options: {
      handler() {
        this.draw();
      },
      deep: true,
    },
  },
  methods: {
    draw() {
      this.chart?.setOption(withFunctions(this.options), { notMerge: true });
    },
  },
};
