"""ament_python package setup: installs nodes, launch, config and msg files."""
import os
from glob import glob

from setuptools import find_packages, setup

package_name = "edge_inference"

NODES = ["camera_node", "policy_node", "behavior_node", "pwm_bridge_node", "sim_node", "expert_node", "monitor_node"]

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/config/backends", glob("config/backends/*.yaml")),
        ("share/" + package_name + "/config/rviz", glob("config/rviz/*")),
        ("share/" + package_name + "/config/rqt", glob("config/rqt/*")),
        ("share/" + package_name + "/msg", glob("edge_inference_msgs/msg/*.msg")),
    ] + [  # shipped demo/trained models, resolved relative to the share dir (resources.resolve_model_path)
        ("share/" + package_name + "/" + d, [os.path.join(d, f) for f in files])
        for d, _, files in os.walk("models") if files
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="edge_inference maintainers",
    maintainer_email="edge-inference@example.com",
    description="Learned driving and behavior models on a Pi 5 + Hailo-8 RC car.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [f"{n} = {package_name}.ros.nodes.{n}:main" for n in NODES]
        + ["edge-inference = edge_inference.cli:main"],
    },
)
