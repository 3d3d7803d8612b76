// The job page's interactive 3D view of the student's model (issue 12).
//
// Nothing is loaded until a staff member presses "View in 3D": then three.js (vendored,
// static/vendor/three-0.187.0, MIT) and the one loader the file needs (STL, OBJ or 3MF)
// are imported, the model is fetched from the job's own download route, centred on the
// build plate, and drawn with orbit controls (drag to turn, wheel or pinch to zoom, arrow
// keys to pan when the canvas has focus). The picture above stays the default: the view
// is for a closer look, and says so plainly when the browser has no WebGL or the file
// cannot be read.
//
// Markup (templates/staff/_thumbnail.html):
//   <button data-viewer-src="/staff/jobs/7/files/x.stl" data-viewer-format="stl"
//           data-viewer-target="model-viewer">View in 3D</button>
//   <div id="model-viewer" hidden></div>
// State for tests and assistive technology: the target gets data-viewer-state =
// loading | ready | failed, and data-viewer-triangles once drawn.

const THREE_URL = "/static/vendor/three-0.187.0/build/three.module.js";
const ADDONS = "/static/vendor/three-0.187.0/examples/jsm/";
const LOADERS = {
  stl: ["loaders/STLLoader.js", "STLLoader"],
  obj: ["loaders/OBJLoader.js", "OBJLoader"],
  "3mf": ["loaders/3MFLoader.js", "ThreeMFLoader"],
};

function say(target, text, state) {
  let note = target.querySelector(".viewer-note");
  if (!note) {
    note = document.createElement("p");
    note.className = "viewer-note";
    note.setAttribute("role", "status");
    target.prepend(note);
  }
  note.textContent = text;
  if (state) target.dataset.viewerState = state;
}

function webglAvailable() {
  try {
    const canvas = document.createElement("canvas");
    return !!(canvas.getContext("webgl2") || canvas.getContext("webgl"));
  } catch (e) {
    return false;
  }
}

function countTriangles(THREE, object) {
  let n = 0;
  object.traverse((child) => {
    if (child.isMesh && child.geometry) {
      const g = child.geometry;
      n += g.index ? g.index.count / 3 : g.attributes.position.count / 3;
    }
  });
  return Math.round(n);
}

async function open(button) {
  const target = document.getElementById(button.dataset.viewerTarget || "model-viewer");
  if (!target) return;
  if (target.dataset.viewerState === "ready" || target.dataset.viewerState === "loading") {
    target.hidden = !target.hidden;
    button.setAttribute("aria-expanded", String(!target.hidden));
    return;
  }
  target.hidden = false;
  button.setAttribute("aria-expanded", "true");
  const format = (button.dataset.viewerFormat || "").toLowerCase();
  if (!LOADERS[format]) {
    say(target, "This file type has no 3D view; download it to open it.", "failed");
    return;
  }
  if (!webglAvailable()) {
    say(target, "The 3D view needs WebGL, which this browser has turned off. The picture above shows the model.", "failed");
    return;
  }
  say(target, "Loading the model…", "loading");
  try {
    const THREE = await import(THREE_URL);
    const [path, name] = LOADERS[format];
    const { OrbitControls } = await import(ADDONS + "controls/OrbitControls.js");
    const loaderModule = await import(ADDONS + path);
    const response = await fetch(button.dataset.viewerSrc, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const data = await response.arrayBuffer();
    const loader = new loaderModule[name]();
    let object;
    if (format === "obj") {
      object = loader.parse(new TextDecoder().decode(data));
    } else if (format === "stl") {
      const geometry = loader.parse(data);
      geometry.computeVertexNormals();
      object = new THREE.Mesh(geometry, new THREE.MeshStandardMaterial({ color: 0x5b8def }));
    } else {
      object = loader.parse(data);
    }
    object.traverse((child) => {
      if (child.isMesh) {
        if (!child.geometry.attributes.normal) child.geometry.computeVertexNormals();
        child.material = new THREE.MeshStandardMaterial({ color: 0x5b8def, flatShading: false });
      }
    });
    draw(THREE, OrbitControls, target, object);
    target.dataset.viewerTriangles = String(countTriangles(THREE, object));
    say(target, `Drag to turn, scroll or pinch to zoom. ${Number(target.dataset.viewerTriangles).toLocaleString()} triangles.`, "ready");
  } catch (err) {
    say(target, `The 3D view could not show this file (${err && err.message ? err.message : err}). The picture above and the download still work.`, "failed");
  }
}

function draw(THREE, OrbitControls, target, object) {
  // 3MF and STL are millimetres with Z up (3MF core spec; STL by convention in slicers).
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xf4f6f8);
  const group = new THREE.Group();
  group.add(object);
  group.rotation.x = -Math.PI / 2; // Z up → three.js Y up
  scene.add(group);
  const box = new THREE.Box3().setFromObject(group);
  const size = box.getSize(new THREE.Vector3());
  const centre = box.getCenter(new THREE.Vector3());
  group.position.sub(new THREE.Vector3(centre.x, box.min.y, centre.z));
  const radius = Math.max(size.x, size.y, size.z) || 1;
  const grid = new THREE.GridHelper(radius * 2, 20, 0x9aa5b1, 0xd5dbe1);
  scene.add(grid);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x667788, 2.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.set(radius, radius * 2, radius * 1.5);
  scene.add(sun);

  const width = Math.min(target.clientWidth || 480, 720);
  const height = Math.round(width * 0.75);
  const camera = new THREE.PerspectiveCamera(40, width / height, radius / 100, radius * 50);
  camera.position.set(radius * 1.4, radius * 1.1, radius * 1.6);
  const renderer = new THREE.WebGLRenderer({ antialias: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.setSize(width, height);
  renderer.domElement.tabIndex = 0;
  renderer.domElement.setAttribute("role", "img");
  renderer.domElement.setAttribute("aria-label", `3D view of the model, ${size.x.toFixed(1)} × ${size.z.toFixed(1)} × ${size.y.toFixed(1)} mm`);
  renderer.domElement.className = "viewer-canvas";
  target.append(renderer.domElement);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.target.set(0, size.y / 2, 0);
  controls.listenToKeyEvents(renderer.domElement);
  const render = () => renderer.render(scene, camera);
  controls.addEventListener("change", render);
  controls.update();
  render();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-viewer-src]");
  if (button) {
    event.preventDefault();
    open(button);
  }
});
