/** Loads every gradient rule (each file registers its ops). */
import "./elementwise.js";
import "./linalg.js";
import "./reduce.js";
import "./shape.js";
import "./indexing.js";
import "./layers.js";
