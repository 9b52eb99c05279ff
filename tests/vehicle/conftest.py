import sys
from pathlib import Path

# the scripted world (_world.py) is shared by the machine tests
sys.path.insert(0, str(Path(__file__).parent))
