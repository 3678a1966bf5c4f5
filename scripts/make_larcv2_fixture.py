"""Writes tests/fixtures/larcv2_events.root: simulated events in the larcv2 ROOT layout.

larcv2 (github.com/DeepLearnPhysics/larcv2) stores larcv::EventImage2D and larcv::EventParticle
objects in trees image2d_<producer>_tree and particle_<producer>_tree. This script declares
classes with the same names and data members (as a real larcv2 file shows them), writes three
1e1p events with them, and saves the arrays it wrote beside the file for the tests to compare.

Needs CERN ROOT's Python bindings (`pip install root` gives ROOT 6.40 here); not a project
dependency. Run from the repository root:  python scripts/make_larcv2_fixture.py
"""

from pathlib import Path

import numpy as np
import ROOT

from lartpcnet.sim.samples import generate_event, load_sample

ROOT.gInterpreter.Declare(r"""
#include <string>
#include <vector>
namespace larcv {
  struct Point2D { double x = 0, y = 0; };
  struct BBox2D { unsigned short _id = 0; Point2D _p1, _p2; virtual ~BBox2D() {} };
  struct ImageMeta : public BBox2D {
    unsigned short _image_id = 0; size_t _col_count = 0; size_t _row_count = 0; int _unit = 1;
  };
  struct Image2D { std::vector<float> _img; unsigned short _id = 0; ImageMeta _meta; virtual ~Image2D() {} };
  struct EventBase {
    std::string _producer; unsigned long long _run = 0, _subrun = 0, _event = 0; virtual ~EventBase() {}
  };
  struct EventImage2D : public EventBase { std::vector<larcv::Image2D> _image_v; };
  struct Particle {
    unsigned short _id = 0; int _shape = 0; unsigned int _trackid = 0; int _pdg = 0;
    double _px = 0, _py = 0, _pz = 0;  // _vtx/_end_pt (larcv::Vertex) left out: cling gives it no streamer
    double _energy_init = 0, _energy_deposit = 0; std::string _process;
    unsigned int _parent_trackid = 0; int _parent_pdg = 0; unsigned int _interaction_id = 0;
  };
  // real larcv2 puts _part_v in a ParticleSet base; cling gives such a base no streamer, and
  // readers find the members by their leaf names either way
  struct EventParticle : public EventBase { std::vector<larcv::Particle> _part_v; };
}
""")

ROWS, COLS = 96, 128


def main() -> None:
    out = Path("tests/fixtures/larcv2_events.root")
    config = load_sample("1e1p")
    events = [generate_event(config, 21, i) for i in range(3)]
    f = ROOT.TFile(str(out), "RECREATE")
    images_tree = ROOT.TTree("image2d_wire_tree", "wire tree")
    particles_tree = ROOT.TTree("particle_mctruth_tree", "mctruth tree")
    ev_img = ROOT.larcv.EventImage2D()
    ev_part = ROOT.larcv.EventParticle()
    images_tree.Branch("image2d_wire_branch", ev_img)
    particles_tree.Branch("particle_mctruth_branch", ev_part)
    expected = {}
    for number, event in enumerate(events):
        ev_img._producer, ev_img._run, ev_img._subrun, ev_img._event = "wire", 1, 0, number
        ev_img._image_v.clear()
        for projection, plane in enumerate(event.planes):
            # a ROWS x COLS window at the middle of the 512 x 512 crop: dense, column-major like larcv2
            dense = np.zeros((ROWS, COLS), np.float32)
            r, c = plane.coords[:, 0] - (256 - ROWS // 2), plane.coords[:, 1] - (256 - COLS // 2)
            inside = (r >= 0) & (r < ROWS) & (c >= 0) & (c < COLS)
            dense[r[inside], c[inside]] = plane.values[inside]
            expected[f"event{number}_plane{projection}"] = dense
            image = ROOT.larcv.Image2D()
            image._img = ROOT.std.vector("float")(dense.T.ravel().tolist())  # index = col * rows + row
            image._id = projection
            image._meta._id = projection
            image._meta._col_count, image._meta._row_count = COLS, ROWS
            image._meta._p2.x, image._meta._p2.y = float(COLS), float(ROWS)
            ev_img._image_v.push_back(image)
        ev_part._producer, ev_part._event = "mctruth", number
        ev_part._part_v.clear()
        for row in event.particles[:8]:
            p = ROOT.larcv.Particle()
            p._id, p._trackid, p._pdg = int(row["id"]), int(row["id"]), int(row["pdg"])
            p._px, p._py, p._pz = float(row["px"]), float(row["py"]), float(row["pz"])
            p._energy_init, p._energy_deposit = float(row["energy_init"]), float(row["energy_deposit"])
            p._process = row["process"].decode()
            p._parent_trackid = max(int(row["parent"]), 0)
            ev_part._part_v.push_back(p)
        expected[f"event{number}_pdg"] = event.particles["pdg"][:8]
        expected[f"event{number}_energy_init"] = event.particles["energy_init"][:8].astype(np.float64)
        images_tree.Fill()
        particles_tree.Fill()
    f.Write()
    f.Close()
    np.savez_compressed(out.with_suffix(".npz"), **expected)
    print(f"wrote {out} and {out.with_suffix('.npz')}")


if __name__ == "__main__":
    main()
